select sku, current_price, recommended_price, profit_uplift, binding_constraint
from price_recommendations_history
where as_of = $as_of;
